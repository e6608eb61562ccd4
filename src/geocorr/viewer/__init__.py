"""An interactive correspondence viewer: one self-contained HTML page per set of pairs.

- :mod:`~geocorr.viewer.grid`: feature grids as the page embeds them, and the
  page's nearest neighbour computed in Python (what tests compare against);
- :mod:`~geocorr.viewer.sources`: the feature kinds shown (2D, rendered part
  descriptor, fused, adapter), composed from the library's feature code;
- :mod:`~geocorr.viewer.overlay`: the stage-1 mesh drawn over its image;
- :mod:`~geocorr.viewer.page`: the page itself (template ``viewer.html``);
- :mod:`~geocorr.viewer.files`: a pair of the user's image files (``geocorr view``);
- :mod:`~geocorr.viewer.demo_pairs`: the demo's test pairs where 3D fixes a twin swap.

docs/viewer.md describes the page.
"""

from geocorr.viewer.demo_pairs import DemoViewerSettings, write_demo_viewer
from geocorr.viewer.page import (
    ViewerImage,
    ViewerKeypoints,
    ViewerPair,
    ViewerRecord,
    ViewerSettings,
    read_page_data,
    render_page,
    write_viewer,
)

__all__ = ["ViewerImage", "ViewerKeypoints", "ViewerPair", "ViewerRecord", "ViewerSettings",
           "DemoViewerSettings", "read_page_data", "render_page", "write_viewer",
           "write_demo_viewer"]
