"""API trouble is told once per outage, whatever number of parts fail and however often."""

from __future__ import annotations

import logging

import pytest
import urllib3
from airflowtask.log_setup import KOPF_REQUESTS, QuietKopf
from airflowtask.outage import OUTAGE, Outage, describe, is_api_trouble
from kubernetes.client.exceptions import ApiException


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "airflowtask.outage"
            and r.levelno >= logging.INFO]


def test_one_warning_while_parts_fail_and_one_line_when_all_work_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    outage = Outage()
    for _ in range(50):
        outage.failed("status writes", ConnectionRefusedError("refused"))
        outage.failed("the Lease", ApiException(status=503, reason="Service Unavailable"))
    outage.succeeded("the Lease")  # status writes still fail: not over
    assert outage.ongoing
    outage.succeeded("status writes")
    assert not outage.ongoing
    lines = _lines(caplog)
    assert [level for level, _ in lines] == ["WARNING", "INFO"]
    assert "status writes: ConnectionRefusedError: refused" in lines[0][1]
    assert lines[1][1].startswith("the Kubernetes API answers again, after ")


def test_a_failure_right_after_an_outage_is_not_a_new_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    outage = Outage(aftershock_seconds=60)
    outage.failed("the Lease", ConnectionRefusedError())
    outage.succeeded("the Lease")
    outage.failed("kopf's requests", "storage is (re)initializing")
    outage.succeeded("kopf's requests")
    assert [level for level, _ in _lines(caplog)] == ["WARNING", "INFO", "INFO", "INFO"]
    later = Outage(aftershock_seconds=0)
    later.failed("the Lease", ConnectionRefusedError())
    later.succeeded("the Lease")
    later.failed("the Lease", ConnectionRefusedError())
    assert [level for level, _ in _lines(caplog)][-3:] == ["WARNING", "INFO", "WARNING"]


def test_successes_without_a_failure_say_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    Outage().succeeded("status writes")
    assert _lines(caplog) == []


def _terminating() -> ApiException:
    error = ApiException(status=403, reason="Forbidden")
    error.body = ('{"kind":"Status","message":"pods \\"x\\" is forbidden: unable to create new content in namespace t '
                  'because it is being terminated","reason":"Forbidden","details":{"causes":[{"reason":'
                  '"NamespaceTerminating","field":"metadata.namespace"}]},"code":403}')
    return error


@pytest.mark.parametrize(("error", "trouble"), [
    (ApiException(status=403, reason="Forbidden"), True),
    (ApiException(status=503, reason="Service Unavailable"), True),
    (ApiException(status=429, reason="Too Many Requests"), True),
    (ApiException(status=0, reason="connection"), True),
    (ApiException(status=404, reason="Not Found"), False),
    (_terminating(), False),
    (ApiException(status=422, reason="Unprocessable Entity"), False),
    (urllib3.exceptions.MaxRetryError(None, "/x", "refused"), True),
    (ConnectionRefusedError(), True),
    (TimeoutError(), True),
    (ValueError("a bug"), False),
])
def test_which_errors_are_api_trouble(error: BaseException, trouble: bool) -> None:
    assert is_api_trouble(error) is trouble


def test_errors_are_described_in_a_few_words() -> None:
    assert describe(ApiException(status=403, reason="Forbidden")) == "HTTP 403 Forbidden"
    assert describe(ConnectionRefusedError("refused\nmore")) == "ConnectionRefusedError: refused"
    assert describe(TimeoutError()) == "TimeoutError"


def _record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_kopf_is_quiet_per_object_and_its_retries_count_as_the_outage(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    quiet = QuietKopf()
    assert not quiet.filter(_record("kopf.objects", logging.INFO, "Timer 'advance' succeeded."))
    assert quiet.filter(_record("kopf.objects", logging.ERROR, "Timer 'advance' failed with an exception."))
    assert quiet.filter(_record("kopf.activities.startup", logging.INFO, "Activity 'start' succeeded."))
    retry = "Request attempt #1/21 failed; will retry: GET https://x/apis -> ClientConnectorError('refused')"
    assert not quiet.filter(_record("kopf._cogs.clients.api", logging.ERROR, retry))
    assert not quiet.filter(_record("kopf.objects", logging.ERROR, retry))  # a request made for one object
    gone = "Failed to post an event. Ignoring and continuing. Code: 404. Message: namespaces \"t-1\" not found."
    assert not quiet.filter(_record("kopf.objects", logging.WARNING, gone))
    refused = "Failed to post an event. Ignoring and continuing. Code: 403. Message: events is forbidden: User x"
    assert not quiet.filter(_record("kopf.objects", logging.WARNING, refused))  # the RBAC outage
    invalid = "Failed to post an event. Ignoring and continuing. Code: 422. Message: Event is invalid: reason"
    assert quiet.filter(_record("kopf.objects", logging.WARNING, invalid))
    assert any(KOPF_REQUESTS in message for _, message in _lines(caplog))
    OUTAGE.succeeded(KOPF_REQUESTS)


def test_a_part_without_successes_counts_as_working_once_its_failure_expired(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    outage = Outage()
    outage.failed("kopf's requests", "refused", expires=0.0)
    outage.failed("the Lease", ConnectionRefusedError())
    outage.succeeded("the Lease")  # kopf's last failure has expired by now
    assert not outage.ongoing
    waiting = Outage()
    waiting.failed("kopf's requests", "refused", expires=60.0)
    waiting.failed("the Lease", ConnectionRefusedError())
    waiting.succeeded("the Lease")
    assert waiting.ongoing


def _failed(message: str, error: BaseException) -> logging.LogRecord:
    record = _record("kopf.objects", logging.ERROR, message)
    record.exc_info = (type(error), error, None)
    return record


def test_kopf_pausing_an_object_after_api_trouble_counts_as_the_outage(caplog: pytest.LogCaptureFixture) -> None:
    from kopf._cogs.clients.errors import APIForbiddenError, APINotFoundError

    caplog.set_level(logging.INFO)
    quiet = QuietKopf()
    throttled = "Throttling for 1 seconds due to an unexpected error: APIForbiddenError(...)"
    assert not quiet.filter(_failed(throttled, APIForbiddenError("forbidden", status=403, headers={})))
    assert any(KOPF_REQUESTS in message for _, message in _lines(caplog))
    assert quiet.filter(_failed(throttled, APINotFoundError("gone", status=404, headers={})))  # not an outage
    assert quiet.filter(_failed(throttled, ValueError("a bug")))
    terminating = APIForbiddenError("... because it is being terminated (NamespaceTerminating)", status=403, headers={})
    assert quiet.filter(_failed(throttled, terminating))
    OUTAGE.succeeded(KOPF_REQUESTS)


def test_a_part_not_asked_again_is_forgotten_so_the_next_outage_is_told(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    outage = Outage(aftershock_seconds=0.0, forget_seconds=0.0)
    outage.failed("Pod requests", ConnectionRefusedError())  # and no Pod request is made for a long while
    outage.succeeded("the Lease")
    assert not outage.ongoing
    caplog.clear()
    outage.failed("AirflowTask requests", ApiException(status=403, reason="Forbidden"))
    assert [level for level, message in _lines(caplog) if "cannot be used" in message] == ["WARNING"]


def test_a_pod_waiting_for_its_service_account_is_no_outage() -> None:
    """A new namespace gets its ``default`` ServiceAccount a moment after it is made; a Pod created before is
    refused (403) and retried, but the API is fine."""
    import asyncio

    import kubernetes
    from airflowtask.kube import Kube

    def create_namespaced_pod(**_: object) -> None:
        raise ApiException(status=403, reason="Forbidden") from None

    refused = ApiException(status=403, reason="Forbidden")
    refused.body = 'pods "p" is forbidden: error looking up service account t/default: serviceaccount not found'

    def create_namespaced_pod_early(**_: object) -> None:
        raise refused

    create_namespaced_pod_early.__name__ = "create_namespaced_pod"
    kube = Kube(kubernetes.client.ApiClient(), workers=1)
    with pytest.raises(ApiException):
        asyncio.run(kube._call(create_namespaced_pod_early))
    assert not OUTAGE.ongoing
    with pytest.raises(ApiException):
        asyncio.run(kube._call(create_namespaced_pod))
    assert OUTAGE.ongoing
    OUTAGE.succeeded("Pod requests")
    kube.close()
