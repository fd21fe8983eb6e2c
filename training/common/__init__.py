"""What the training kits share: splits, augmentation, metrics, losses, schedule, config, export, errors."""
