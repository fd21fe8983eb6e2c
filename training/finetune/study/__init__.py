"""How much a few polygons help: water IoU on unlabelled parts of a scene against the number of polygons.

Protocol (docs/results/finetune.md is generated from the results file this writes):
- Scenes: real Sen1Floods11 chips with hand labels. Each 512x512 chip is cut into a checkerboard of
  128x128-pixel blocks; polygons are drawn only in the "black" blocks (label_draw.py: inside one class,
  off its boundary, as an analyst would), and water IoU is scored on the "white" blocks, which no polygon
  touches, against the hand labels (label -1 and nodata S1 ignored).
- For each polygon count (half water, half dry) and seed, the polygons are written in Web Mercator and
  the `contrasat finetune` job (run_finetune, default recipe, 1 torch thread) fits a model from the base
  model's weights ("base"), from the same network with a SimCLR-pre-trained encoder ("simclr", built by
  the contrastive kit's own commands, simclr_commands) and from random weights ("random"); the exported
  ONNX is run by the runtime's map-floods job, exactly as users run it.
- Next to them on the same blocks: the base model as bundled, the SimCLR start as built, VH < -20 dB.
- The default recipe was chosen on development chips only (`--chips` of other Sen1Floods11 chips with
  `--set KEY=VALUE` overrides); `report --recipes` adds that comparison to the page.

Resumable: finished runs are kept in the results JSON and skipped on a rerun. protocol.py runs it,
scoring.py scores and tabulates, report.py writes the page; the commands are in ../cli.py.

    nice contrasat train finetune study --out runs/finetune_dev --inits base --counts 10 \
        --seeds 0 1 --chips India_900498 Nigeria_812045 Mekong_333434 Somalia_699062 --set distill=1.0
    # the study itself, one process per chip side by side (they share the SimCLR start), then joined
    nice contrasat train finetune study --out runs/finetune_final/Bolivia_312675 \
        --chips Bolivia_312675 --simclr runs/finetune_final/simclr   # and the same for Spain_7370579
    contrasat train finetune study-merge runs/finetune_final/*_*/results.json \
        --out docs/results/finetune.json
    cp runs/finetune_dev/results.json docs/results/finetune_recipes.json
    contrasat train finetune study-report --results docs/results/finetune.json \
        --recipes docs/results/finetune_recipes.json --out docs/results/finetune.md
"""
