"""Relaxed cyclic consistency on hand-made points, and the mask box."""

import numpy as np
import pytest

from geocorr.matching.cyclic import cycle_consistent, cycle_error, cyclic_tolerance, mask_bbox


def test_tolerance_is_per_axis_fraction_of_the_box():
    np.testing.assert_allclose(cyclic_tolerance([10, 20, 110, 70], 0.1), [10.0, 5.0])
    with pytest.raises(ValueError, match="tau"):
        cyclic_tolerance([0, 0, 1, 1], -0.1)
    with pytest.raises(ValueError, match="bbox"):
        cyclic_tolerance([5, 0, 1, 1], 0.1)


def test_hand_made_cycles():
    box = [0, 0, 100, 40]  # tau=0.1 -> tolerance (10, 4)
    p_s = np.array([[50, 20], [50, 20], [50, 20], [50, 20], [50, 20]], float)
    back = np.array([[50, 20],    # exact cycle
                     [60, 24],    # exactly on the tolerance on both axes: kept
                     [61, 20],    # 11 px off in u: rejected
                     [50, 15],    # 5 px off in v (> 4): rejected though |d| < 10
                     [41, 17]], float)
    np.testing.assert_array_equal(cycle_consistent(p_s, back, box, 0.1),
                                  [True, True, False, False, True])
    np.testing.assert_allclose(cycle_error(p_s, back)[3], [0, 5])
    # tau = 0 is the strict mutual test.
    np.testing.assert_array_equal(cycle_consistent(p_s, back, box, 0.0),
                                  [True, False, False, False, False])


def test_mask_bbox():
    m = np.zeros((10, 20), bool)
    m[2:5, 3:9] = True
    np.testing.assert_array_equal(mask_bbox(m), [3, 2, 8, 4])
    with pytest.raises(ValueError, match="non-empty"):
        mask_bbox(np.zeros((3, 3), bool))
