"""The one price function (api/pricing.py through ModelSpec.price): each model's rules as the pricing
guide states them, a user's catalog file setting prices, and bad prices refused by name."""

from __future__ import annotations

import math

import pytest

from v2v_lab.api.catalog import load_catalog
from v2v_lab.errors import InputError

# (model, input seconds, options, keyword arguments, credits, rate per second) from the reference's
# price table: 28/s with a 56 minimum for aleph2, tiers for seedance2, seedance2_5's +50% with an
# input video, hailuo3's references, format surcharges and the large-output surcharge.
CASES = [
    ("aleph2", 10.0, {}, {}, 280.0, 28.0),
    ("aleph2", 1.5, {}, {}, 56.0, 28.0),                                     # the minimum per task
    ("aleph2", 10.0, {"output_format": "prores"}, {}, 330.0, 33.0),
    ("aleph2", 10.0, {"output_format": "png_sequence"}, {}, 330.0, 33.0),
    ("aleph2", 10.0, {"output_format": "sdr_rec709_10bit"}, {"input_size": (1920, 1080)}, 480.0, 48.0),
    ("aleph2", 10.0, {"output_format": "sdr_rec709_10bit"}, {"input_size": (3840, 2160)}, 680.0, 68.0),
    ("seedance2", 10.0, {"duration": 5}, {"ratio": "1280:720"}, 180.0, 36.0),
    ("seedance2", 10.0, {"duration": 5}, {"ratio": "864:496"}, 180.0, 36.0),
    ("seedance2", 10.0, {"duration": 5}, {"ratio": "1920:1080"}, 200.0, 40.0),
    ("seedance2", 10.0, {"duration": 5}, {"ratio": "1440:1440"}, 200.0, 40.0),   # 1080p's pixels
    ("seedance2", 10.0, {"duration": 5}, {"ratio": "3840:2160"}, 750.0, 150.0),
    ("seedance2", 10.0, {"duration": "auto"}, {}, 540.0, 36.0),              # auto: reserved at 15 s
    ("seedance2_fast", 10.0, {"duration": 4}, {}, 116.0, 29.0),
    ("seedance2_5", 10.0, {}, {}, 225.0, 45.0),                              # default 5 s at 720p, +50%
    ("seedance2_5", 10.0, {"draft": True}, {}, 150.0, 30.0),                 # a draft is 480p
    ("seedance2_5", 10.0, {"duration": 6}, {"ratio": "1920:1080"}, 612.0, 102.0),
    ("hailuo3", 10.0, {}, {}, 60.0, 10.0),                                   # default 6 s at 768p
    ("hailuo3", 10.0, {"resolution": "2k"}, {}, 90.0, 15.0),
    ("hailuo3", 10.0, {"resolution": "2K"}, {}, 90.0, 15.0),                 # the deprecated spelling
    ("hailuo3", 10.0, {}, {"references": 2}, 84.0, 14.0),
    ("gen4_aleph", 10.0, {}, {}, 75.0, 15.0),                                # output capped at 5 s
]


@pytest.mark.parametrize("model,seconds,options,extra,credits,rate", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_models_price_follows_its_rules(model, seconds, options, extra, credits, rate):
    price = load_catalog()[model].price(seconds, options, **extra)
    assert (price.credits, price.per_second) == (credits, rate), price
    assert load_catalog()[model].estimate_credits(seconds, options, **extra) == credits


def test_prices_no_first_party_source_states_are_marked_unconfirmed():
    catalog = load_catalog()
    assert catalog["gen4_aleph"].price(5.0).confirmed
    assert not catalog["aleph2"].price(5.0).confirmed and not catalog["kling_4"].price(5.0).confirmed


def test_a_users_catalog_file_sets_a_price_and_its_rules(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  kling_4: {credits_per_second: 12, credits_per_second_confirmed: true}\n"
                    "  aleph2: {price_rules: {minimum: 100, by_format: {prores: 9}}}\n")
    catalog = load_catalog(path)
    assert catalog["kling_4"].price(5.0).credits == 60.0 and catalog["kling_4"].price(5.0).confirmed
    assert catalog["aleph2"].price(2.0).credits == 100.0
    assert catalog["aleph2"].price(10.0, {"output_format": "prores"}).credits == 370.0
    # The other rules of the entry stay as the built-in catalog has them.
    assert catalog["aleph2"].price(10.0, {"output_format": "png_sequence"}).credits == 330.0


@pytest.mark.parametrize("rule", ["{by_tier: {720p: 0}}", "{by_format: {prores: .nan}}", "{minimum: -1}",
                                  "{input_video_multiplier: 0}", "{per_reference: .inf}"])
def test_a_price_rule_of_zero_nan_or_negative_is_refused_by_name(tmp_path, rule):
    path = tmp_path / "bad.yaml"
    path.write_text(f"models:\n  seedance2: {{price_rules: {rule}}}\n")
    with pytest.raises(InputError) as caught:
        load_catalog(path)
    assert "models.seedance2.price_rules." in str(caught.value) and "\n" not in str(caught.value)


def test_every_models_estimate_is_finite_and_positive_for_every_option_value():
    """Every enum value of every field a price reads, on every model: a price, never 0 or NaN."""
    for model in load_catalog().values():
        for name in ("output_format", "resolution", "ratio", "draft"):
            field = model.fields.get(name)
            values = list(field.enum) if field and field.enum else ([True, False] if name == "draft" and field else [])
            for value in values or [None]:
                options = {} if value is None else {name: value}
                if model.broken_rule(options) is not None:
                    continue
                credits = model.estimate_credits(8.0, options)
                assert math.isfinite(credits) and credits > 0, (model.name, options, credits)


def test_a_tasks_money_is_read_as_the_server_sends_it_and_nothing_else():
    from v2v_lab.api.task import parse_task

    done = parse_task({"id": "t", "status": "SUCCEEDED", "output": ["u"], "cost": {"credits": 56}})
    running = parse_task({"id": "t", "status": "RUNNING", "estimatedCost": {"credits": 84.5}})
    assert (done.cost, done.estimated_cost, running.cost, running.estimated_cost) == (56.0, None, None, 84.5)
    for bad in ({"credits": float("nan")}, {"credits": -1}, {"credits": True}, {"credits": "56"}, 56, None):
        assert parse_task({"id": "t", "status": "FAILED", "cost": bad}).cost is None, bad
