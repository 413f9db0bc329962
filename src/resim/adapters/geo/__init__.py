"""Geolocation of source addresses (the ``Geolocator`` port).

- ``ranges.CidrCountryFile``: the operator's own CSV of address ranges and countries;
- ``ranges.NoGeolocator``: no data configured, every address is unknown (the default);
- ``fake.FakeGeolocator``: a fixed table, for tests.
"""
