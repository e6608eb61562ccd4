"""Stand-in for Orient Anything V2's top-level ``inference.py``.

``inf_single_case(model, image_ref, image_tgt)`` as in the repository: pad
mode preprocessing (longest side 518, the other a multiple of 14, bicubic,
white padding to 518 x 518), one forward pass, argmax over the 360 azimuth,
180 elevation and 360 roll bins, and the answer dictionary with the same keys
and types (0-d tensors). The symmetry order is 1 (the known object has one
front), returned as a float tensor like the repository's von Mises fit.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from utils.app_utils import *  # noqa: F403 - the repository imports it the same way

TARGET = 518


def preprocess_images(image_list, mode="crop"):
    if mode != "pad":
        raise ValueError("the stand-in implements the 'pad' mode inf_single_case uses")
    out = []
    for img in image_list:
        img = img.convert("RGB")
        w, h = img.size
        if w >= h:
            nw, nh = TARGET, round(h * (TARGET / w) / 14) * 14
        else:
            nw, nh = round(w * (TARGET / h) / 14) * 14, TARGET
        arr = np.asarray(img.resize((nw, nh), Image.Resampling.BICUBIC), np.float32) / 255.0
        t = torch.from_numpy(arr).permute(2, 0, 1)
        ph, pw = TARGET - nh, TARGET - nw
        t = torch.nn.functional.pad(t, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2),
                                    mode="constant", value=1.0)
        out.append(t)
    return torch.stack(out)


@torch.no_grad()
def inf_single_batch(model, batch):
    B, S = batch.shape[:2]
    pose_enc = model(batch).view(B * S, -1)
    az = torch.argmax(pose_enc[:, 0:360], dim=-1)
    el = torch.argmax(pose_enc[:, 360:540], dim=-1) - 90
    ro = torch.argmax(pose_enc[:, 540:900], dim=-1) - 180
    alpha = torch.ones(B * S)
    return {"ref_az_pred": az[0], "ref_el_pred": el[0], "ref_ro_pred": ro[0],
            "ref_alpha_pred": alpha[0], "rel_az_pred": 0.0, "rel_el_pred": 0.0,
            "rel_ro_pred": 0.0}


@torch.no_grad()
def inf_single_case(model, image_ref, image_tgt):
    images = [image_ref] if image_tgt is None else [image_ref, image_tgt]
    tensors = preprocess_images(images, mode="pad").to(model.get_device())
    return inf_single_batch(model=model, batch=tensors.unsqueeze(0))
