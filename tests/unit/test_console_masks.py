"""What an agent sees of a customer before checking their ID (SEC-08): masks."""

from __future__ import annotations

from resim.services.console.console import mask_email, mask_name, mask_phone


def test_names_keep_only_initials() -> None:
    assert mask_name("Anna Hansen") == "A*** H***"
    assert mask_name("Jean-Luc  de la Tour") == "J*** d*** l*** T***"
    assert mask_name("") == "***"


def test_emails_keep_the_first_letters_and_the_top_level_domain() -> None:
    assert mask_email("anna.hansen@example.dk") == "a***@e***.dk"
    assert mask_email("x@localhost") == "x***@***"
    assert "hansen" not in mask_email("anna.hansen@hansen.example")


def test_phone_numbers_keep_the_country_code_and_two_digits() -> None:
    assert mask_phone("+4520123456") == "+45******56"
    assert mask_phone("+4512") == "*****"
