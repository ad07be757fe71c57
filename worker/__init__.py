"""Taskdeck execution: runs tasks through Claude Code on RQ workers."""
