"""Online global identities: the multi-camera linker's tracks get gallery identities the frame they first appear.

`GlobalIdentities` resolves a finished recording; the service's central linker cannot wait for the end. Here each
global track is given an identity the first frame it is shown: the identity of someone last seen strictly before
and at most `window_s` ago within walking reach (`continued_identities`, the very rule of the recorded runs), or a
new one. While the track runs, its identity's last sighting moves with it; once that is older than the window it is
forgotten, so the state stays the size of the crowd.

New identities are placeholders (-1, -2, ...) until `create_pending` writes them to the store, inside the linker's
commit transaction, so an identity exists exactly when the frames that made it are committed. The object is plain
Python and numpy: the linker pickles it into its versioned state.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from trackid.identity.global_ids import DEFAULT_WINDOW_S, continued_identities
from trackid.identity.stores import GalleryStore

__all__ = ["LiveIdentities"]


class LiveIdentities:
    """Track -> identity for one site's live global tracks (parameters as `GlobalIdentities`')."""

    def __init__(
        self,
        site: str,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        max_speed_mps: float = 2.5,
        unit_per_metre: float = 1.0,
        slack_m: float = 1.0,
    ) -> None:
        self.site = site
        self.window_s = float(window_s)
        self.max_speed_mps = float(max_speed_mps)
        self.unit_per_metre = float(unit_per_metre)
        self.slack_m = float(slack_m)
        self.owner: dict[int, int] = {}  # track -> identity (< 0: a placeholder not yet in the store)
        self.last: dict[int, tuple[float, float, float]] = {}  # identity -> (time s, x m, y m) of its last sighting
        self._placeholders = 0
        self._unsaved: list[int] = []  # placeholders made since the last `create_pending`, newest last
        self._links: list[tuple[int, int, bool]] = []  # (track, identity, continued) since the last `take_links`

    def observe(self, time: float, tracks: NDArray[np.int64], xy: NDArray[np.float64]) -> NDArray[np.int64]:
        """The identity of each row's track at `time` (xy in ground units); tracks new here are matched first."""
        tracks = np.asarray(tracks, np.int64)
        metres = np.asarray(xy, np.float64).reshape(-1, 2) / self.unit_per_metre
        new = [r for r, t in enumerate(tracks.tolist()) if t not in self.owner]
        if new:
            known = list(self.last)
            table = np.array([self.last[i] for i in known], np.float64).reshape(-1, 3)
            slots = continued_identities(
                metres[new],
                time,
                table[:, 0],
                table[:, 1:],
                window_s=self.window_s,
                max_speed_mps=self.max_speed_mps,
                slack_m=self.slack_m,
            )
            for row, slot in zip(new, slots.tolist(), strict=True):
                if slot >= 0:
                    self.owner[int(tracks[row])] = known[slot]
                else:
                    self._placeholders += 1
                    self.owner[int(tracks[row])] = -self._placeholders
                    self._unsaved.append(-self._placeholders)
                self._links.append((int(tracks[row]), self.owner[int(tracks[row])], slot >= 0))
        out = np.array([self.owner[t] for t in tracks.tolist()], np.int64)
        for identity, (x, y) in zip(out.tolist(), metres.tolist(), strict=True):
            self.last[identity] = (float(time), x, y)
        self._forget(time)
        return out

    def create_pending(self, store: GalleryStore) -> dict[int, int]:
        """Create the placeholders' identities in `store` (call inside the commit's transaction); returns
        placeholder -> identity id (also for placeholders already forgotten: the caller's rows may hold them), and
        the state uses the real ids from now on."""
        pending, self._unsaved = self._unsaved, []
        if not pending:
            return {}
        created = store.create_identities(len(pending), site=self.site)
        mapping = dict(zip(pending, (int(i) for i in created), strict=True))
        self.owner = {t: mapping.get(i, i) for t, i in self.owner.items()}
        self.last = {mapping.get(i, i): v for i, v in self.last.items()}
        return mapping

    def take_links(self, mapping: dict[int, int]) -> list[tuple[int, int, bool]]:
        """The (track, identity, continued) links made since the last call, placeholders resolved by `mapping`
        (`create_pending`'s), for the log: which global id each new track got, and whether it was a return."""
        links, self._links = self._links, []
        return [(t, mapping.get(i, i), continued) for t, i, continued in links]

    def _forget(self, now: float) -> None:
        """Drop identities last seen longer than the window ago, and the ended tracks that held them."""
        stale = {i for i, (t, _, _) in self.last.items() if now - t > self.window_s}
        if stale:
            self.last = {i: v for i, v in self.last.items() if i not in stale}
            self.owner = {t: i for t, i in self.owner.items() if i not in stale}
