"""topics.yaml is valid, complete, and its errors name the topic and the field."""

from __future__ import annotations

import pytest
import yaml

from services.shared.settings import REPO_ROOT
from services.shared.topics import TopicCatalog, TopicsFileError, load_topics_file

TOPICS = REPO_ROOT / "topics.yaml"


def test_every_agency_has_a_live_and_an_exercise_escalation_topic():
    catalog = TopicCatalog.load(TOPICS)
    for agency in ["council", "police", "fire", "ambulance", "housing", "voluntary", None]:
        live = catalog.escalation_topic(agency, exercise=False)
        drill = catalog.escalation_topic(agency, exercise=True)
        assert live != drill
        assert "exercise" in drill and "exercise" not in live


def test_profiles_set_replication_from_the_one_file():
    local = TopicCatalog.load(TOPICS, "local")
    prod = TopicCatalog.load(TOPICS, "production")
    topic = local.spec_of("incidents")
    assert local.replication_factor(topic) == 1
    assert prod.replication_factor(topic) == 3
    assert prod.configs(topic)["min.insync.replicas"] == "2"
    assert local.configs(topic)["min.insync.replicas"] == "1"


def test_the_prefix_isolates_names():
    catalog = TopicCatalog.load(TOPICS, prefix="run1.")
    assert catalog.name("incidents") == "run1.incidents.events.v1"
    assert all(n.startswith("run1.") for n in catalog.names())


def test_an_unknown_topic_id_is_a_clear_error():
    with pytest.raises(KeyError, match="no topic with id 'nope'"):
        TopicCatalog.load(TOPICS).name("nope")


def test_a_bad_topic_names_the_topic_and_the_field(tmp_path):
    raw = yaml.safe_load(TOPICS.read_text())
    raw["topics"][1]["partitions"] = 0
    bad = tmp_path / "topics.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(TopicsFileError, match=r"topic 'escalations.all' field partitions: Input should be greater"):
        load_topics_file(bad)


def test_a_duplicate_topic_name_is_refused(tmp_path):
    raw = yaml.safe_load(TOPICS.read_text())
    raw["topics"][2]["name"] = raw["topics"][1]["name"]
    bad = tmp_path / "topics.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(TopicsFileError, match="declared twice"):
        load_topics_file(bad)


def test_an_internal_topic_is_named_under_its_processor_s_app_id():
    catalog = TopicCatalog.load(TOPICS, prefix="run1.", apps={"escalation": "esc-b"})
    assert catalog.name("escalation.packed") == "run1.esc-b-packed"
    assert catalog.name("tension.by_ward") == "run1.muster-tension-by-ward"
    assert catalog.id_of("run1.esc-b-packed") == "escalation.packed"


def test_a_co_partitioned_topic_with_another_partition_count_names_both(tmp_path):
    raw = yaml.safe_load(TOPICS.read_text())
    packed = next(t for t in raw["topics"] if t["id"] == "escalation.packed")
    packed["partitions"] = 4
    bad = tmp_path / "topics.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(TopicsFileError, match=r"topic 'escalation.packed' field partitions: 4, but it is co-partitioned "
                                              r"with 'incidents', which has 6"):
        load_topics_file(bad)


def test_every_topic_the_processors_use_is_declared(tmp_path):
    from services.casework.app import build as casework
    from services.escalation.app import build as escalation
    from services.shared.settings import Settings
    from services.tension.app import build as tension

    test_settings = Settings(topic_prefix="run1.", home=tmp_path)  # builds connect to nothing
    declared = set(TopicCatalog.from_settings(test_settings).names())
    e, t, c = escalation(test_settings), tension(test_settings), casework(test_settings)
    for app, inputs in ((e.app, (e.inputs, e.candidates)), (t.app, (t.by_ward,)), (c.app, (c.by_case,))):
        used = {table.changelog_topic.get_topic_name() for table in app.tables.values()}
        used |= {name for topic in inputs for name in topic.topics}
        used.add(f"{app.conf.id}-__assignor-__leader")  # faust's leader election topic
        assert used <= declared, sorted(used - declared)
