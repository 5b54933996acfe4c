"""Credentials inside INFLUXDB_URL are used (1.x) or refused (2.x), and never shown."""

import pytest

from ha_pipeline.timeseries.buckets import InfluxConfigError, InfluxSettings, split_credentials


def test_split_credentials_takes_them_out_of_the_url():
    assert split_credentials("http://us%40er:p%3Ass@influx.lan:8086/base") == ("http://influx.lan:8086/base", "us@er", "p:ss")
    assert split_credentials("http://influx.lan:8086") == ("http://influx.lan:8086", None, None)


def test_a_v1_url_with_credentials_becomes_username_and_password():
    settings = InfluxSettings(url="http://user:s3cret@127.0.0.1:8086", api_version=1)
    assert (settings.url, settings.username, settings.password) == ("http://127.0.0.1:8086", "user", "s3cret")
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings)
    explicit = InfluxSettings(url="http://user:s3cret@127.0.0.1:8086", api_version=1, username="other", password="pw")
    assert (explicit.username, explicit.password) == ("other", "pw")


def test_a_v2_url_with_credentials_is_refused_without_showing_them():
    with pytest.raises(InfluxConfigError) as info:
        InfluxSettings(url="http://user:s3cret@127.0.0.1:8086", api_version=2, token="t", org="o")
    assert "s3cret" not in str(info.value) and "INFLUXDB_TOKEN" in str(info.value)
    with pytest.raises(InfluxConfigError) as bad:
        InfluxSettings(url="ftp://user:s3cret@127.0.0.1:8086", api_version=1)
    assert "s3cret" not in str(bad.value)
