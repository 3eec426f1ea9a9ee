from backinstock.models import product_external_id, variant_external_id


def test_a_country_without_states_is_keyed_00():
    assert product_external_id(display_item_id=12366, country_code="SE", state_code=None) == (
        "12366_SE_00"
    )


def test_a_state_is_part_of_the_key():
    product = product_external_id(display_item_id=12366, country_code="US", state_code="NY")
    assert product == "12366_US_NY"
    assert variant_external_id(product_external_id=product, size_id=23400) == "12366_US_NY_23400"
