"""The plots a finished training run leaves in its run directory.

    curves.png            loss and accuracy per epoch (train and test)
    confusion_matrix.png  true class x predicted class on the test set
    misclassified.png     test images the model got wrong, with true / predicted labels
    filters.png           the first layer's filters          } only when the first layer
    feature_maps.png      that layer's output for one image  } is a Conv2d
"""
import numpy as np

import minidl as mdl
from .. import nn, viz


def first_layer(model):
    """The first sub-module (in registration order) that owns parameters, or None."""
    for module in model.modules():
        if module is not model and any(True for _ in module.parameters(recurse=False)):
            return module
    return None


def is_conv2d(layer):
    conv = getattr(nn, "Conv2d", None)
    return conv is not None and isinstance(layer, conv)


def save_run_plots(run, model, history, test_set, predictions, dataset_name):
    """Write the plots listed in the module docstring into `run` (a RunDirectory);
    return the list of paths written."""
    from .classifier import prepare_batch

    written = []
    if history:
        written.append(viz.plot_curves(history, run.file("curves.png")))
    classes = test_set.classes or [str(i) for i in range(int(test_set.labels.max()) + 1)]
    written.append(viz.plot_confusion_matrix(test_set.labels, predictions, classes,
                                             run.file("confusion_matrix.png")))
    written.append(viz.plot_misclassified(test_set.images, test_set.labels, predictions, classes,
                                          run.file("misclassified.png")))
    layer = first_layer(model)
    if is_conv2d(layer):
        written.append(viz.plot_filters(layer.weight.data, run.file("filters.png")))
        model.eval()
        with mdl.no_grad():
            maps = layer(prepare_batch(test_set.images[:1], dataset_name))   # (1, C_out, H', W')
        written.append(viz.plot_feature_maps(test_set.images[0], np.asarray(maps.data)[0],
                                             run.file("feature_maps.png")))
    return written
