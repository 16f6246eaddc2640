"""Download DAVIS 2016 / DAVIS 2017 / COCO 2017 and the paper's ImageNet weights into data/.

    python data/download.py davis2017 coco r101-gn   # the `paper` profile's data and ImageNet ResNet-101-GN
    python data/download.py davis2016
    python data/download.py davis2017 --url DAVIS-2017-trainval-480p.zip=file:///mnt/mirror/DAVIS-2017-trainval-480p.zip

The logic is lipnb.cli.download (download, extract, lay out); see data/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from lipnb.cli.download import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
