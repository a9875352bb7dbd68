"""The GB/T 2260 table and the matching of OSM district names to codes, and a city's settings (no database)."""

from __future__ import annotations

import pytest

from gis.errors import InputError
from gis.geo import gb2260
from gis.geo.cities import city_from_options


def test_the_table_is_whole_and_nests() -> None:
    table = gb2260.table()
    levels = {level: [d for d in table.values() if d.level == level] for level in gb2260.LEVELS}
    assert len(levels["province"]) == 34  # 23 provinces, 5 regions, 4 municipalities, Hong Kong and Macau
    assert len(levels["prefecture"]) > 330 and len(levels["county"]) > 2800
    for d in table.values():
        assert gb2260.CODE.match(d.code), d
        if d.level != "province":
            assert d.parent in table and d.code.startswith(table[d.parent].prefix), d
    assert str(table["220300"]) == "四平市 (220300)"
    assert table["110108"].parent == "110000"  # a municipality's districts sit under it directly


def test_a_city_is_found_by_its_name_or_its_code() -> None:
    assert gb2260.find_city("四平市").code == "220300"
    assert gb2260.find_city("北京市").code == "110000"
    assert gb2260.find_city("双辽市").level == "county"  # a county-level city, unique by name
    with pytest.raises(InputError, match="no prefecture"):
        gb2260.find_city("Siping")
    with pytest.raises(InputError, match="6 digits"):
        gb2260.city_division("22030")
    with pytest.raises(InputError, match="not in the GB/T 2260 table"):
        gb2260.city_division("220399")
    assert [c.name for c in gb2260.counties_of(gb2260.find_city("四平市"))] == \
        ["铁西区", "铁东区", "梨树县", "伊通满族自治县", "双辽市"]
    assert len(gb2260.counties_of(gb2260.find_city("重庆市"))) > 30  # province-level: prefix 50, not 5


def test_districts_match_by_name_then_by_name_without_suffix() -> None:
    nanjing = gb2260.find_city("南京市")
    match = gb2260.match_districts(["玄武区", "秦淮", "鼓楼区 Gulou District", "Jianye", "海淀区", "玄武区"], nanjing,
                                   {"Jianye": "320105"})
    assert match.codes == {"玄武区": "320102", "秦淮": "320104", "鼓楼区 Gulou District": "320106",
                           "Jianye": "320105"}
    assert match.how == {"玄武区": "exact", "秦淮": "name without suffix", "鼓楼区 Gulou District": "exact",
                         "Jianye": "by hand"}
    assert match.unmatched == ["海淀区"]  # a county of another city never matches
    lines = match.lines("nanjing")
    assert "gridpatrol city set nanjing --district '海淀区=CODE'" in lines[-1]
    # 鼓楼区 is a county of several cities: only Nanjing's is its code here
    assert gb2260.match_districts(["鼓楼区"], gb2260.find_city("福州市")).codes == {"鼓楼区": "350102"}


def test_hand_mappings_must_nest_under_the_city() -> None:
    siping = gb2260.find_city("四平市")
    assert gb2260.check_manual(siping, {" 红嘴区 ": "220399"}) == {"红嘴区": "220399"}  # newer than the table
    for bad, message in [({"x": "3201"}, "6 digits"), ({"x": "320102"}, "not a county of 四平市"),
                         ({"x": "220300"}, "not a county"), ({"": "220302"}, "give the district's name")]:
        with pytest.raises(InputError, match=message):
            gb2260.check_manual(siping, bad)
    hand = gb2260.match_districts(["红嘴区"], siping, {"红嘴区": "220399"})
    assert hand.how == {"红嘴区": "by hand, not in the table"}


def test_city_settings_from_options() -> None:
    siping = city_from_options("siping", code="220300", default_storeys=7, m2_per_household=80)
    assert (siping.name, siping.name_en, siping.code, siping.in_china) == ("四平市", "Siping", "220300", True)
    assert "7 storeys" in siping.assumptions()[0] and "80 m²" in siping.assumptions()[1]
    assert city_from_options("四平市").code == "220300"
    assert city_from_options("sp", name="四平市", name_en="Siping City").name_en == "Siping City"
    abroad = city_from_options("vaduz-test", outside_china=True)
    assert abroad.code is None and "synthetic codes" in abroad.assumptions()[2]
    # stored settings stay unless an option changes them
    changed = city_from_options("siping", timezone="Asia/Harbin", base=siping)
    assert (changed.default_storeys, changed.timezone, changed.name) == (7, "Asia/Harbin", "四平市")


@pytest.mark.parametrize("options, message", [
    ({"key": "atlantis"}, "is new: give its GB/T 2260 code"),
    ({"key": "two words", "code": "220300"}, "a city's handle is"),
    ({"key": "x", "code": "220300", "outside_china": True}, "a GB/T 2260 code is a place in China"),
    ({"key": "x", "outside_china": True, "districts": {"a": "990101"}}, "give the city's own code"),
    ({"key": "x", "code": "220300", "default_storeys": 61}, "give 1–60"),
    ({"key": "x", "code": "220300", "m2_per_household": 5}, "give 20–500 m²"),
    ({"key": "x", "code": "220300", "timezone": "Beijing"}, "not a time zone name"),
])
def test_bad_city_options_say_what_to_fix(options: dict, message: str) -> None:
    key = options.pop("key")
    with pytest.raises(InputError, match=message):
        city_from_options(key, **options)
