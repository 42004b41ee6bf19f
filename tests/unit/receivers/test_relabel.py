"""Prometheus relabelling: each action, group references, anchoring, config checks, and the scraper's use."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.config import ConfigError, RelabelConfig, ScrapeJob, load_settings
from collector.model import MetricBatch
from collector.receivers.relabel import relabel
from collector.receivers.scraper import MetricNameDropped, make_targets, relabel_batch

BASE = {"__name__": "http_requests_total", "job": "api", "instance": "a:9100", "method": "GET", "code": "200"}

# (rules, input labels, expected labels or None when dropped)
CASES: list[tuple[str, list[dict[str, Any]], dict[str, str], dict[str, str] | None]] = [
    ("no rules", [], {"a": "1", "empty": ""}, {"a": "1"}),
    (
        "replace default copies the joined value",
        [{"source_labels": ["method", "code"], "target_label": "mc"}],
        BASE,
        {**BASE, "mc": "GET;200"},
    ),
    (
        "replace with a separator",
        [{"source_labels": ["method", "code"], "separator": "-", "target_label": "mc"}],
        BASE,
        {**BASE, "mc": "GET-200"},
    ),
    (
        "replace $1 and ${1}x",
        [{"source_labels": ["instance"], "regex": "(.+):(\\d+)", "target_label": "host", "replacement": "${1}x$2"}],
        BASE,
        {**BASE, "host": "ax9100"},
    ),
    (
        "$1x is the group named 1x, which is absent",
        [{"source_labels": ["instance"], "regex": "(.+):.*", "target_label": "host", "replacement": "$1x"}],
        {"instance": "a:1", "host": "old"},
        {"instance": "a:1"},
    ),
    (
        "named groups, $name and ${name}",
        [
            {
                "source_labels": ["instance"],
                "regex": "(?P<host>[^:]+):(?P<port>.*)",
                "target_label": "hp",
                "replacement": "$port/${host}",
            }
        ],
        BASE,
        {**BASE, "hp": "9100/a"},
    ),
    (
        "$$ is a literal dollar, a lone $ stays",
        [{"source_labels": ["code"], "target_label": "c", "replacement": "$$1 $-"}],
        BASE,
        {**BASE, "c": "$1 $-"},
    ),
    (
        "target_label with a reference",
        [{"source_labels": ["method"], "regex": "(.*)", "target_label": "m_$1", "replacement": "yes"}],
        BASE,
        {**BASE, "m_GET": "yes"},
    ),
    (
        "anchored: a partial match does not replace",
        [{"source_labels": ["method"], "regex": "GE", "target_label": "x", "replacement": "hit"}],
        BASE,
        BASE,
    ),
    (
        "anchored: no match before a trailing newline",
        [{"source_labels": ["v"], "regex": "a", "target_label": "x", "replacement": "hit"}],
        {"v": "a\n"},
        {"v": "a\n"},
    ),
    (
        "a leading (?i) flag applies",
        [{"source_labels": ["method"], "regex": "(?i)get", "target_label": "x", "replacement": "hit"}],
        BASE,
        {**BASE, "x": "hit"},
    ),
    (
        "empty result deletes the target label",
        [{"source_labels": ["nope"], "target_label": "code"}],
        BASE,
        {k: v for k, v in BASE.items() if k != "code"},
    ),
    (
        "absent source labels read as empty",
        [{"source_labels": ["nope", "code"], "regex": ";200", "target_label": "ok", "replacement": "1"}],
        BASE,
        {**BASE, "ok": "1"},
    ),
    ("keep matches", [{"source_labels": ["method"], "regex": "GET|POST", "action": "keep"}], BASE, BASE),
    ("keep drops a mismatch", [{"source_labels": ["method"], "regex": "POST", "action": "keep"}], BASE, None),
    ("keep is anchored", [{"source_labels": ["method"], "regex": "G", "action": "keep"}], BASE, None),
    ("drop drops a match", [{"source_labels": ["code"], "regex": "2..", "action": "drop"}], BASE, None),
    ("drop keeps a mismatch", [{"source_labels": ["code"], "regex": "5..", "action": "drop"}], BASE, BASE),
    ("action is case-insensitive", [{"source_labels": ["code"], "regex": "200", "action": "DROP"}], BASE, None),
    (
        "labelmap copies by name",
        [{"regex": "__meta_(.+)", "action": "labelmap"}],
        {"__meta_zone": "eu", "__meta_rack": "r1", "zone": "old", "x": "1"},
        {"__meta_zone": "eu", "__meta_rack": "r1", "zone": "eu", "rack": "r1", "x": "1"},
    ),
    (
        "labelmap with a prefix replacement",
        [{"regex": "(m.*)", "replacement": "copy_$1", "action": "labelmap"}],
        {"method": "GET", "code": "200"},
        {"method": "GET", "code": "200", "copy_method": "GET"},
    ),
    (
        "labeldrop by name",
        [{"regex": "code|method", "action": "labeldrop"}],
        BASE,
        {
            "__name__": "http_requests_total",
            "job": "api",
            "instance": "a:9100",
        },
    ),
    ("labeldrop is anchored", [{"regex": "cod", "action": "labeldrop"}], BASE, BASE),
    (
        "labelkeep by name",
        [{"regex": "__name__|job|code", "action": "labelkeep"}],
        BASE,
        {"__name__": "http_requests_total", "job": "api", "code": "200"},
    ),
    (
        "rules run in order and see earlier results",
        [
            {"source_labels": ["code"], "regex": "(\\d)\\d\\d", "target_label": "class", "replacement": "${1}xx"},
            {"source_labels": ["class"], "regex": "5xx", "action": "keep"},
        ],
        BASE,
        None,
    ),
]


@pytest.mark.parametrize(("rules", "labels", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_relabel(rules: list[dict[str, Any]], labels: dict[str, str], expected: dict[str, str] | None) -> None:
    before = dict(labels)
    assert relabel(labels, [RelabelConfig.model_validate(r) for r in rules]) == expected
    assert labels == before  # the input is not changed


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"regex": "(unclosed"}, "does not compile"),
        ({"source_labels": ["a"]}, "replace needs a target_label"),
        ({"source_labels": ["a"], "target_label": "1bad"}, "is not a label name"),
        ({"action": "labelmap", "replacement": "bad-name"}, "replacement 'bad-name' for labelmap"),
        ({"action": "labeldrop", "regex": "x", "source_labels": ["a"]}, "labeldrop takes only regex"),
        ({"action": "hashmod"}, "Input should be 'replace', 'keep'"),
        ({"action": "keep", "regexp": "x"}, "unknown key"),
    ],
)
def test_config_errors(tmp_path: Path, rule: dict[str, Any], message: str) -> None:
    path = tmp_path / "obs.yaml"
    path.write_text(yaml.safe_dump({"scrape": {"jobs": [{"job_name": "j", "metric_relabel_configs": [rule]}]}}))
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "scrape.jobs.0.metric_relabel_configs.0" in str(info.value) and message in str(info.value)


def _job(**relabel_configs: Any) -> ScrapeJob:
    return ScrapeJob.model_validate({"job_name": "node", **relabel_configs})


def test_make_targets_without_rules() -> None:
    [target] = make_targets(_job(), [(["h:1"], {"team": "a", "__meta_x": "m", "empty": ""})])
    assert target.url == "http://h:1/metrics"
    assert target.label_dict == {"instance": "h:1", "job": "node", "team": "a"}


def test_make_targets_with_relabel_configs() -> None:
    job = _job(
        relabel_configs=[
            {"source_labels": ["__meta_env"], "regex": "test", "action": "drop"},
            {"regex": "__meta_(.+)", "action": "labelmap"},
            {
                "source_labels": ["__address__"],
                "regex": "([^:]+):\\d+",
                "target_label": "__address__",
                "replacement": "$1:9100",
            },
            {"source_labels": ["__meta_path"], "regex": "(.+)", "target_label": "__metrics_path__"},
            {"source_labels": ["__meta_tls"], "regex": "yes", "target_label": "__scheme__", "replacement": "https"},
        ]
    )
    groups = [
        (["a:80", "b:81"], {"__meta_env": "prod", "__meta_path": "/m", "__meta_tls": "yes"}),
        (["c:82"], {"__meta_env": "test"}),
        (["d:83"], {"__meta_env": "prod", "instance": "named"}),
    ]
    targets = make_targets(job, groups)
    assert [t.url for t in targets] == ["https://a:9100/m", "https://b:9100/m", "http://d:9100/metrics"]
    assert targets[0].label_dict == {"env": "prod", "instance": "a:9100", "job": "node", "path": "/m", "tls": "yes"}
    assert targets[2].label_dict == {"env": "prod", "instance": "named", "job": "node"}


def test_make_targets_drops_a_target_left_without_address() -> None:
    job = _job(relabel_configs=[{"regex": "__address__", "action": "labeldrop"}])
    assert make_targets(job, [(["a:1"], {})]) == []


def test_make_targets_relabels_job_and_instance() -> None:
    job = _job(
        relabel_configs=[
            {"target_label": "job", "replacement": "renamed"},
            {"source_labels": ["__address__"], "regex": "(.*):.*", "target_label": "instance"},
        ]
    )
    [target] = make_targets(job, [(["host:9"], {})])
    assert target.url == "http://host:9/metrics"
    assert target.label_dict == {"instance": "host", "job": "renamed"}


def _batch() -> MetricBatch:
    batch = MetricBatch()
    a = batch.add_sample({"__name__": "keep_me", "path": "/x"}, 1000, 1.0)
    b = batch.add_sample({"__name__": "drop_me"}, 1000, 2.0)
    batch.add_sample({"__name__": "keep_me", "path": "/y"}, 1000, 3.0)
    batch.add_exemplar(a, 1000, 0.5, "ab", "cd", {"user": "u"})
    batch.add_exemplar(b, 1000, 0.7, "", "", {})
    return batch


def test_relabel_batch_keeps_samples_and_exemplars_of_surviving_series() -> None:
    rules = [
        RelabelConfig(source_labels=["__name__"], regex="drop_.*", action="drop"),
        RelabelConfig(source_labels=["path"], regex="/(.*)", target_label="route"),
        RelabelConfig(regex="path", action="labeldrop"),
    ]
    out = relabel_batch(_batch(), rules)
    assert [out.series[fp] for fp in out.fingerprint] == [
        {"__name__": "keep_me", "route": "x"},
        {"__name__": "keep_me", "route": "y"},
    ]
    assert out.value == [1.0, 3.0] and out.timestamp_ms == [1000, 1000]
    assert [out.series[fp] for fp in out.ex_fingerprint] == [{"__name__": "keep_me", "route": "x"}]
    assert out.ex_trace_id == ["ab"] and out.ex_span_id == ["cd"] and out.ex_value == [0.5]
    assert out.ex_labels.keys == ["user"] and out.ex_labels.values == ["u"]
    assert out.exemplars_table().num_rows == 1 and not math.isnan(out.value[0])


def test_relabel_batch_merges_series_that_become_equal() -> None:
    out = relabel_batch(_batch(), [RelabelConfig(regex="path", action="labeldrop")])
    assert len(out.series) == 2 and len(out) == 3


def test_relabel_batch_fails_when_the_name_goes() -> None:
    with pytest.raises(MetricNameDropped, match="drop_me"):
        relabel_batch(_batch(), [RelabelConfig(source_labels=["path"], regex="", target_label="__name__")])
