"""Flyte front end: a connector (``airflowtask.flyte.connector``) that runs Flyte ``airflow`` tasks as AirflowTasks.

Importing this package registers nothing; importing :mod:`airflowtask.flyte.connector` registers the connector.
"""
