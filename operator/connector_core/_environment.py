"""Process settings Airflow needs before it is first imported: a writable AIRFLOW_HOME."""

from __future__ import annotations

import os
import tempfile

if not os.environ.get("AIRFLOW_HOME"):
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflowtask-home-")
