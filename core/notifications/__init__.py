"""Delivery of outbox notifications (SMS, email, in-app), reminders and nurse calendar feeds.

Framework-free: the worker process, the dashboard and the voice service all call into here.
"""
