"""The pure storage-URI parser: strict forms, one-line errors, safe joining."""

from __future__ import annotations

import pytest

from spikebatch.errors import ConfigError, InvalidURIError, StorageError
from spikebatch.domain.storage_uri import StorageURI, file_uri, parse_uri, relative_key_problem


@pytest.mark.parametrize(
    ("uri", "scheme", "bucket", "key"),
    [
        ("s3://my-bucket/inputs/run1/a.zip", "s3", "my-bucket", "inputs/run1/a.zip"),
        ("s3://my.bucket-2/prefix/", "s3", "my.bucket-2", "prefix/"),
        ("s3://abc/", "s3", "abc", ""),
        ("s3://abc", "s3", "abc", ""),
        ("s3://abc/name with space?#", "s3", "abc", "name with space?#"),
        ("file:///", "file", "", "/"),
        ("file:///data/store/x.bin", "file", "", "/data/store/x.bin"),
        ("file:///data/store/", "file", "", "/data/store/"),
    ],
)
def test_valid_uris_parse_and_print_back(uri: str, scheme: str, bucket: str, key: str) -> None:
    parsed = parse_uri(uri)
    assert (parsed.scheme, parsed.bucket, parsed.key) == (scheme, bucket, key)
    # The canonical form adds the "/" after a bare bucket; otherwise it is the input.
    assert str(parsed) == (uri + "/" if uri == "s3://abc" else uri)


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("", "empty"),
        ("bucket/key", "scheme"),
        ("S3://bucket/key", "scheme"),
        ("s3:/bucket/key", "scheme"),
        ("http://host/key", "scheme"),
        ("s3:///key", "bucket name is empty"),
        ("s3://Bucket/key", "not a valid name"),
        ("s3://ab/key", "not a valid name"),
        ("s3://bucket_x/key", "not a valid name"),
        ("s3://192.168.1.1/key", "IP address"),
        ("s3://a..b/key", "adjacent"),
        ("s3://bucket//key", "absolute"),
        ("s3://bucket/a//b", "empty segment"),
        ("s3://bucket/a/../b", "traversal"),
        ("s3://bucket/./b", "traversal"),
        ("s3://bucket/a\\b", "backslash"),
        ("s3://bucket/a\nb", "control character"),
        (" s3://bucket/a", "whitespace"),
        ("file://host/data", "empty host"),
        ("file://localhost/data", "empty host"),
        ("file:data/x", "scheme"),
        ("file:///data/../etc/passwd", "traversal"),
        ("file:///data//x", "empty segment"),
        ("s3://bucket/" + "k" * 1025, "1024 bytes"),
    ],
)
def test_malformed_uris_raise_one_line_naming_the_uri(uri: str, fragment: str) -> None:
    with pytest.raises(InvalidURIError) as caught:
        parse_uri(uri)
    message = str(caught.value)
    assert fragment in message
    assert repr(uri)[:40] in message or repr(uri) in message
    assert "\n" not in message
    assert "s3://bucket/key or file:///absolute/path" in message


def test_invalid_uri_error_is_a_storage_and_a_config_error() -> None:
    # Callers catching either family see it (the CLI maps both to exit code 2).
    with pytest.raises(StorageError):
        parse_uri("nope")
    with pytest.raises(ConfigError):
        parse_uri("nope")


def test_scheme_requirement_names_the_expected_scheme() -> None:
    assert parse_uri("s3://bucket/k", scheme="s3").key == "k"
    with pytest.raises(InvalidURIError, match=r"handles s3:// URIs"):
        parse_uri("file:///tmp/x", scheme="s3")
    with pytest.raises(InvalidURIError, match=r"handles file:// URIs"):
        parse_uri("s3://bucket/k", scheme="file")


def test_prefix_helpers() -> None:
    obj = parse_uri("s3://bucket/outputs/run1")
    assert not obj.is_prefix and obj.name == "run1"
    # as_prefix adds the "/" so run1 never matches run10.
    assert str(obj.as_prefix()) == "s3://bucket/outputs/run1/"
    assert parse_uri("s3://bucket/").is_prefix and parse_uri("s3://bucket/").name == ""


def test_join_and_relative_to_round_trip() -> None:
    prefix = parse_uri("s3://bucket/outputs/run1/")
    joined = prefix.join("plots/fig 1.png")
    assert str(joined) == "s3://bucket/outputs/run1/plots/fig 1.png"
    assert joined.relative_to(prefix) == "plots/fig 1.png"
    assert parse_uri("file:///a/b/c.txt").relative_to(parse_uri("file:///a")) == "b/c.txt"


@pytest.mark.parametrize("relative", ["../x", "a/../../x", "/etc/passwd", "a//b", "", ".", "a\\..\\b"])
def test_join_refuses_keys_that_escape_the_prefix(relative: str) -> None:
    with pytest.raises(InvalidURIError, match="cannot join"):
        parse_uri("s3://bucket/outputs/run1/").join(relative)


def test_join_needs_a_prefix_and_relative_to_needs_containment() -> None:
    with pytest.raises(InvalidURIError, match="not a prefix"):
        parse_uri("s3://bucket/file.txt").join("x")
    with pytest.raises(InvalidURIError, match="is not under"):
        parse_uri("s3://bucket/outputs/run10/x").relative_to(parse_uri("s3://bucket/outputs/run1"))
    with pytest.raises(InvalidURIError, match="is not under"):
        parse_uri("s3://other/outputs/run1/x").relative_to(parse_uri("s3://bucket/outputs/run1/"))


@pytest.mark.parametrize(
    ("relative", "problem"),
    [
        ("a/b.txt", None),
        ("folder/", None),
        ("..", "traversal"),
        ("a/./b", "traversal"),
        ("/abs", "absolute"),
        ("a\x00b", "control"),
    ],
)
def test_relative_key_problem(relative: str, problem: str | None) -> None:
    found = relative_key_problem(relative)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_file_uri_from_paths() -> None:
    assert file_uri("/data/x.bin") == "file:///data/x.bin"
    assert file_uri("/data/store", folder=True) == "file:///data/store/"
    assert file_uri("/", folder=True) == "file:///"
    with pytest.raises(InvalidURIError, match="not absolute"):
        file_uri("relative/path")


def test_storage_uri_is_a_value() -> None:
    assert parse_uri("s3://bucket/k") == StorageURI("s3", "bucket", "k")
    assert len({parse_uri("s3://bucket/k"), parse_uri("s3://bucket/k")}) == 1
