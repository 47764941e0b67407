"""airflowtask: run Apache Airflow operators, sensors and hooks as Kubernetes objects."""

__version__ = "0.1.0"
