"""The shop's catalogue the inventory seeds on first start: sku, name, price in cents, initial stock."""

from __future__ import annotations

from typing import NamedTuple


class CatalogueEntry(NamedTuple):
    sku: str
    name: str
    price_cents: int
    stock: int


CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry("KB-001", "Mechanical keyboard", 8900, 120),
    CatalogueEntry("MS-002", "Wireless mouse", 2900, 200),
    CatalogueEntry("MN-003", "27-inch monitor", 24900, 40),
    CatalogueEntry("HS-004", "Headset", 5900, 80),
    CatalogueEntry("WC-005", "Webcam", 4900, 90),
    CatalogueEntry("DK-006", "USB-C dock", 12900, 50),
    CatalogueEntry("CB-007", "HDMI cable", 900, 500),
    CatalogueEntry("SS-008", "1 TB SSD", 7900, 150),
    CatalogueEntry("RM-009", "16 GB RAM kit", 5400, 140),
    CatalogueEntry("LP-010", "Laptop stand", 3900, 110),
    CatalogueEntry("CH-011", "Office chair", 19900, 25),
    CatalogueEntry("DS-012", "Standing desk", 39900, 15),
    CatalogueEntry("LM-013", "Desk lamp", 2500, 160),
    CatalogueEntry("MP-014", "Mouse pad", 1200, 300),
    CatalogueEntry("SP-015", "Bluetooth speaker", 6900, 70),
    CatalogueEntry("MC-016", "USB microphone", 9900, 45),
    CatalogueEntry("PB-017", "Power bank", 3500, 180),
    CatalogueEntry("HB-018", "USB hub", 1900, 220),
    CatalogueEntry("TB-019", "Graphics tablet", 14900, 30),
    CatalogueEntry("RT-020", "Wi-Fi router", 11900, 35),
)
