"""Tests of the cleaner: its checks, quarantine, remediation and updates."""
