"""Evaluation of synthetic images in named feature spaces (Inception-v3 or a dataset
classifier), gathered into a JSON + self-contained HTML report.

Import by module, e.g. ``from models.metrics.evaluate import evaluate``:

    evaluate           evaluate(): the entry point of an evaluate job
    features           FeatureExtractor, InceptionFeatures, ClassifierFeatures
    inception          the FID Inception-v3 network in plain torch
    classifier         the small CNN (and resnet18) used as reference and utility classifiers
    collect            one streaming pass: running statistics and a seeded kept sample
    frechet            frechet_distance, RunningStats
    kid                kernel_inception_distance
    precision_recall   precision_recall (k-NN manifolds)
    inception_score    InceptionScore (streaming)
    coverage           ClassCoverage
    utility            classifier_utility (TRTR, TSTR, small real subsets ± synthetic)
    plots, report      figures and EvaluationReport (to_dict, to_html)
"""
