"""Deployment targets: what each device needs from a model, checked before it gets there."""
