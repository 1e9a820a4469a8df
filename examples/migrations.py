"""Changing a model over releases: rows kept, migrations run once, older code kept from writing.

A paint shop's first release stores a colour (spelt the British way) and a
price in pounds; a later one renames the field, keeps prices in pence, adds a
stock count and keeps each shop in a collection of its own. Run it with
``python examples/migrations.py``: it works in a temporary folder and prints
what each release sees.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import attrs

import hutch


@attrs.frozen
class Paint(hutch.Model):
    """The first release's paint."""

    __collection__ = "paints"

    name: str
    colour: str = ""
    price: float = 0.0  # in pounds
    shop: str = ""  # the shop's name and town, as one text: "Leeds: Hue & Cry"


def rename_colour(row: dict[str, Any]) -> dict[str, Any]:
    """Version 2: ``colour`` becomes ``color``."""
    if "colour" in row:  # (a row already renamed stays as it is)
        row["color"] = row.pop("colour")
    return row


def to_pence(row: dict[str, Any]) -> dict[str, Any]:
    """Version 3: prices in whole pence, not pounds.

    Not safe to run twice: a price in pence cannot be told from one in pounds, so
    this step relies on the store's record that it ran (which a copy, an export or
    a backup of the collection carries; rows moved by hand leave it behind).
    """
    row["price"] = round(row.get("price", 0) * 100)
    return row


def shops_apart(db: hutch.Database) -> None:
    """Version 4: each shop a row of ``shops``, each paint pointing at its shop.

    Safe to run twice: a paint already moved has no ``shop`` left, and stays as it is.
    """
    store = db.store
    for paint_id in store.get_row_ids("paints"):
        row = store.get_row("paints", paint_id) or {}
        if "shop" not in row:
            continue
        town, _, name = str(row.pop("shop", "")).partition(": ")
        shop_id = f"{town}-{name}".lower().replace(" ", "-").replace("&", "and")
        since = row["created_at"]  # (a row written through the store gets no timestamps)
        store.set_row("shops", shop_id, {"town": town, "name": name, "created_at": since})
        store.set_row("paints", paint_id, {**row, "shop_id": shop_id})


@attrs.frozen
class Shop(hutch.Model):
    """A shop: a collection the later release fills in from the paints."""

    __collection__ = "shops"

    name: str
    town: str


@attrs.frozen
class PaintLater(hutch.Model):
    """The later release's paint: the same collection, changed in four ways."""

    __collection__ = "paints"
    __relations__ = (hutch.Relation("shop_id", Shop, on_delete="restrict"),)
    __migrations__ = (
        hutch.Migration(2, "rename colour to color", rename_colour),
        hutch.Migration(3, "prices in pence", to_pence),
        hutch.Migration(4, "shops apart", run=shops_apart),
    )

    name: str
    color: str = ""
    price: int = 0  # in pence
    stock: int = 0  # new, with a default: it needs no migration
    shop_id: str | None = None


def first_release(url: str) -> None:
    with hutch.open(url) as db:
        paints = db.repo(Paint)
        paints.create(id="red", name="red", colour="crimson", price=4.5, shop="Leeds: Hue & Cry")
        paints.create(id="blue", name="blue", colour="navy", price=3.25, shop="York: Tint")
        print("release 1 stored:", ", ".join(f"{p.name} ({p.colour})" for p in paints.all()))


def deploy_check(url: str) -> None:
    with hutch.open(url, migrate=False) as db:
        print("a dry run, before the deploy:")
        for step in db.migrate(PaintLater, dry_run=True):
            print(f"  would migrate {step}")


def later_release(url: str) -> None:
    with hutch.open(url) as db:
        db.repo(Shop)
        paints = db.repo(PaintLater)  # the pending migrations run here, once
        print(f"release 2 finds paints at schema version {db.schema_version('paints')}:")
        for paint in paints.all():
            shop = db.repo(Shop).get(paint.shop_id or "")
            where = f"{shop.name}, {shop.town}" if shop else "?"
            print(f"  {paint.name}: {paint.color}, {paint.price}p, {paint.stock} in stock, {where}")
        applied = db.store.get_value("hutch.migrations.paints")
        print("  the store records:", "; ".join(a["description"] for a in applied))
        print("  and a second run has nothing left to do:", db.migrate())


def old_worker(url: str) -> None:
    with hutch.open(url) as db:
        old = db.repo(Paint)
        names = ", ".join(f"{p.name} (colour: {p.colour or 'unknown'})" for p in old.all())
        print("a worker still on release 1 reads:", names)
        try:
            old.update("red", name="scarlet")
        except hutch.SchemaMismatch as error:
            print(f"  and its write is refused: {error}")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = str(Path(folder) / "shop")
        first_release(url)
        deploy_check(url)
        later_release(url)
        old_worker(url)


if __name__ == "__main__":
    main()
