"""Plugins shipped with hutch (entity models, the auth adapter), written as a third party would."""
