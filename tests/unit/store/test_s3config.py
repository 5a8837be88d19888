"""``s3://`` URLs and the AWS settings, resolved as the AWS CLI resolves them (variables, then files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zerofs.errors import ObjectStoreAccessError, UsageError
from zerofs.store.s3config import S3Location, S3Settings, is_s3_url, parse_s3_url, settings_from_environment


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("s3://backups", S3Location("backups", "")),
        ("s3://backups/", S3Location("backups", "")),
        ("s3://backups/team", S3Location("backups", "team")),
        ("s3://backups/team/a-b_c.d/", S3Location("backups", "team/a-b_c.d")),
        ("s3://my.bucket-1/x", S3Location("my.bucket-1", "x")),
    ],
)
def test_parse_s3_url(url: str, location: S3Location) -> None:
    assert parse_s3_url(url) == location
    assert parse_s3_url(location.url) == location


@pytest.mark.parametrize(
    "url",
    [
        "backups/team",
        "s3:/backups",
        "s3://",
        "s3://ab",
        "s3://Backups/team",
        "s3://back_ups",
        "s3://-backups",
        "s3://a..b/x",
        "s3://" + "b" * 64,
        "s3://backups//team",
        "s3://backups/./team",
        "s3://backups/team/../x",
        "s3://backups/te*am",
    ],
)
def test_parse_s3_url_rejects(url: str) -> None:
    with pytest.raises(UsageError) as error:
        parse_s3_url(url)
    assert "\n" not in str(error.value)


def test_is_s3_url() -> None:
    assert is_s3_url("s3://b/p")
    assert not is_s3_url("/var/repo")
    assert not is_s3_url("s3-repo")


def test_location_key_url() -> None:
    assert S3Location("b", "p/q").key_url("packs/1") == "s3://b/p/q/packs/1"
    assert S3Location("b").key_url("packs/1") == "s3://b/packs/1"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_variables_alone(tmp_path: Path) -> None:
    environ = {
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
        "AWS_SESSION_TOKEN": "TOK",
        "AWS_REGION": "eu-west-3",
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:8333",
    }
    settings = settings_from_environment(environ, tmp_path)
    assert (settings.access_key_id, settings.secret_access_key, settings.session_token) == ("AK", "SK", "TOK")
    assert settings.region == "eu-west-3"
    assert settings.endpoint_url == "http://127.0.0.1:8333"
    assert "SK" not in repr(settings)
    assert "TOK" not in repr(settings)


def test_s3_specific_endpoint_and_default_region(tmp_path: Path) -> None:
    environ = {
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_ENDPOINT_URL": "http://general",
        "AWS_ENDPOINT_URL_S3": "http://s3-only",
    }
    settings = settings_from_environment(environ, tmp_path)
    assert settings.region == "us-west-2"
    assert settings.endpoint_url == "http://s3-only"


def test_default_profile_from_the_files(tmp_path: Path) -> None:
    write(tmp_path / ".aws" / "credentials", "[default]\naws_access_key_id = FK\naws_secret_access_key = FS\n")
    write(tmp_path / ".aws" / "config", "[default]\nregion = ap-south-1\nendpoint_url = http://minio:9000\n")
    settings = settings_from_environment({}, tmp_path)
    assert settings == S3Settings("FK", "FS", None, "ap-south-1", "http://minio:9000")


def test_named_profile_and_precedence(tmp_path: Path) -> None:
    write(
        tmp_path / ".aws" / "credentials",
        "[default]\naws_access_key_id = DK\naws_secret_access_key = DS\n"
        "[team]\naws_access_key_id = TK\naws_secret_access_key = TS\n",
    )
    write(tmp_path / ".aws" / "config", "[default]\nregion = r-default\n[profile team]\nregion = r-team\n")
    settings = settings_from_environment({"AWS_PROFILE": "team"}, tmp_path)
    assert (settings.access_key_id, settings.secret_access_key, settings.region) == ("TK", "TS", "r-team")
    # Variables beat the files; a key pair is never mixed across sources.
    environ = {"AWS_PROFILE": "team", "AWS_ACCESS_KEY_ID": "EK", "AWS_SECRET_ACCESS_KEY": "ES", "AWS_REGION": "r-env"}
    settings = settings_from_environment(environ, tmp_path)
    assert (settings.access_key_id, settings.secret_access_key, settings.region) == ("EK", "ES", "r-env")


def test_credentials_in_the_config_file_and_files_named_by_variables(tmp_path: Path) -> None:
    config = write(tmp_path / "elsewhere" / "cfg", "[profile p]\naws_access_key_id = CK\naws_secret_access_key = CS\n")
    environ = {"AWS_PROFILE": "p", "AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no")}
    settings = settings_from_environment(environ, tmp_path)
    assert (settings.access_key_id, settings.secret_access_key, settings.region) == ("CK", "CS", "us-east-1")


def test_an_unknown_profile_is_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path / ".aws" / "credentials", "[default]\naws_access_key_id = DK\naws_secret_access_key = DS\n")
    with pytest.raises(UsageError, match="AWS profile 'nope' is in neither"):
        settings_from_environment({"AWS_PROFILE": "nope"}, tmp_path)


def test_no_credentials_anywhere_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ObjectStoreAccessError, match="no AWS credentials: set AWS_ACCESS_KEY_ID") as error:
        settings_from_environment({"AWS_REGION": "x"}, tmp_path)
    assert "\n" not in str(error.value)
    with pytest.raises(ObjectStoreAccessError):
        settings_from_environment({"AWS_ACCESS_KEY_ID": "AK"}, tmp_path)  # a key id without its secret


@pytest.mark.parametrize(
    "endpoint",
    ["localhost:8333", "http//x", "ftp://host", "http://", "http://host:99999", "http://h:p", "http://h/?q=1"],
)
def test_a_malformed_endpoint_is_a_usage_error(tmp_path: Path, endpoint: str) -> None:
    environ = {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_ENDPOINT_URL": endpoint}
    with pytest.raises(UsageError, match="invalid S3 endpoint URL") as error:
        settings_from_environment(environ, tmp_path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8333", "https://s3.example.com", "https://h:443/base"])
def test_good_endpoints(endpoint: str) -> None:
    assert S3Settings("AK", "SK", endpoint_url=endpoint).endpoint_url == endpoint


def test_a_malformed_file_is_one_line(tmp_path: Path) -> None:
    write(tmp_path / ".aws" / "credentials", "aws_access_key_id = no section\n[x\n")
    with pytest.raises(UsageError, match="cannot read AWS settings from") as error:
        settings_from_environment({}, tmp_path)
    assert "\n" not in str(error.value)
