"""Console links for operators known to run an external job."""

from __future__ import annotations

from airflowtask.connector_core.links import log_links, runs_on_dataproc
from airflowtask.connector_core.model import LogLink


class DataprocSubmitJobOperator:
    """Stands in for the Google provider's operator (recognised by class name)."""

    region = "europe-west1"
    project_id = "proj"
    job_id = None


def test_dataproc_link_from_the_trigger_job_id() -> None:
    assert log_links(DataprocSubmitJobOperator(), {"job_id": "j-1"}) == (
        LogLink(
            name="Dataproc Console",
            uri="https://console.cloud.google.com/dataproc/jobs/j-1/monitoring?region=europe-west1&project=proj",
        ),
    )


def test_no_link_without_a_job_or_for_other_operators() -> None:
    assert log_links(DataprocSubmitJobOperator(), {}) == ()
    assert log_links(object(), {"job_id": "j-1"}) == ()
    assert log_links(None) == ()


def test_subclasses_are_recognised_once_per_class() -> None:
    class MyDataprocJob(DataprocSubmitJobOperator):
        job_id = "j-2"

    assert runs_on_dataproc(MyDataprocJob)
    assert not runs_on_dataproc(dict)
    assert log_links(MyDataprocJob())[0].uri.startswith("https://console.cloud.google.com/dataproc/jobs/j-2/")
