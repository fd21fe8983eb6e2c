"""Fine-tuning a bundled flood model on an analyst's own labels (`contrasat finetune`) and its study.

A kit of its own because it loads the networks of two kits' bundled models: the flood kit's U-Net and the
contrastive kit's pre-trained-encoder SegNet (docs/architecture.md).
"""
