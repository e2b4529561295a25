"""The project's image collections as training and evaluation read them: folders of images (the shared data's
layout), the face and emoji sets with their held-out splits, and the hole masks. Below training and evaluation,
which both import it (and never each other's data code)."""
