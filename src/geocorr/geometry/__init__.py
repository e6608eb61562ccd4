"""Geometry core: cameras, meshes, rasterization, soft silhouettes, rays, geodesics.

Imports nothing else from geocorr; everything else may import it.
"""

from geocorr.geometry.camera import Camera, CameraError, load_camera, look_at, save_camera
from geocorr.geometry.image_transform import ResizePad, resize_and_pad

__all__ = ["Camera", "CameraError", "load_camera", "save_camera", "look_at", "ResizePad",
           "resize_and_pad"]
