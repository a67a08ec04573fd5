"""The footer of every view: Textual's, showing only the keys that fit whole."""

from __future__ import annotations

from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class FittedFooter(Footer):
    """A key cut at the right edge reads as another key (`/ F`), so the keys that do
    not fit whole are left out; `?` and the palette list them all."""

    async def recompose(self) -> None:
        await super().recompose()
        self.call_after_refresh(self._fit)

    def on_resize(self) -> None:
        for key in self.query(FooterKey):
            key.display = True
        self.call_after_refresh(self._fit)

    def on_show(self) -> None:
        # back from a dialog (the palette): laid out again, fitted again
        self.on_resize()

    def _fit(self, tries: int = 3) -> None:
        keys = [k for k in self.query(FooterKey) if not k.has_class("-command-palette")]
        palette = [k for k in self.query(FooterKey) if k.has_class("-command-palette")]
        if tries and any(k.display and not k.region.width for k in keys + palette):
            self.call_after_refresh(self._fit, tries - 1)  # not laid out yet
            return
        edge = palette[0].region.x if palette else self.region.right
        past = False
        for key in keys:
            # from the first that does not fit on: the order is the order of importance
            past = past or key.region.right > edge
            if past:
                key.display = False
