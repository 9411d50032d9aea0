"""Create page: the generation form on the left, the live preview with progress and Cancel on the right."""

from __future__ import annotations

from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.state.create import EXAMPLES, SIZES, CreateViewModel
from app.widgets.common import bind_spin
from app.widgets.player import PlayerWidget
from rdtf_engine.core.requests import MAX_FRAMES

IMAGE_FILTER = "Images (*.png *.webp *.gif *.jpg *.jpeg)"


class ImagePicker(QWidget):
    """A path field with Browse and Clear: an optional start or end frame."""

    def __init__(self, vm: CreateViewModel, name: str) -> None:
        super().__init__()
        self.vm, self.name = vm, name
        self.edit = QLineEdit(placeholderText="none")
        self.edit.setReadOnly(True)
        browse, clear = QPushButton("Browse…"), QPushButton("Clear")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.edit, 1)
        lay.addWidget(browse)
        lay.addWidget(clear)
        browse.clicked.connect(self.browse)
        clear.clicked.connect(lambda: vm.set_value(name, ""))
        getattr(vm, name + "_changed").connect(self.edit.setText)

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose an image", "", IMAGE_FILTER)
        if path:
            self.vm.set_value(self.name, path)


class CreatePage(QWidget):
    def __init__(self, vm: CreateViewModel) -> None:
        super().__init__()
        self.vm = vm
        self._build_widgets(vm)
        self._build_layout()
        self._connect(vm)
        self._models(vm.models)
        self._busy(False)

    def _build_widgets(self, vm: CreateViewModel) -> None:
        self.prompt = QPlainTextEdit(vm.prompt)
        self.prompt.setPlaceholderText("Describe the sticker and its motion, e.g. “cat waving hello”")
        self.prompt.setMaximumHeight(80)
        self.examples = QComboBox()
        self.examples.addItem("Examples…")
        self.examples.addItems(EXAMPLES)
        self.frames = QSpinBox(minimum=4, maximum=MAX_FRAMES)
        self.size = QComboBox()
        for s in SIZES:
            self.size.addItem(f"{s} px", s)
        self.steps = QSpinBox(minimum=0, maximum=200)
        self.steps.setSpecialValueText("Auto")  # 0: the engine picks (10 UniPC steps for text alone, else 20)
        self.steps.setToolTip("Denoising steps. Auto: 10 for a prompt alone, 20 with a start or end image; "
                              "with Fast, the model's own few-step count")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.dice = QToolButton(text="Random")
        self.dice.setToolTip("New random seed")
        self.guidance = QDoubleSpinBox(minimum=0.0, maximum=30.0, singleStep=0.5, decimals=1)
        self.model = QComboBox()
        self.style = QCheckBox()
        self.style.setToolTip("Adds the model's style words to the prompt: its text → video is then drafted in "
                              "the style it learnt for them (a model trained with style deltas)")
        self.fast = QCheckBox()
        self.fast.setToolTip("Draws with the model's few-step deltas: one denoiser call a step, without guidance, "
                             "instead of 10–20 guided steps — about twice as fast, a little softer and less exact "
                             "than the full sampler (a model distilled with rdtf train --objective consistency)")
        self.start_image, self.end_image = ImagePicker(vm, "start_image"), ImagePicker(vm, "end_image")
        self.generate_btn = QPushButton("Generate")
        self.generate_btn.setDefault(True)
        self.generate_btn.setToolTip("Generate (Ctrl+Enter)")
        self.cancel_btn = QPushButton("Cancel")
        self.progress = QProgressBar(maximum=1000)
        self.status = QLabel()
        self.preview = PlayerWidget()
        self.preview.placeholder = "The preview appears here"

    def _build_layout(self) -> None:
        """The form and its buttons on the left, the (live) preview on the right."""
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.dice)
        form = QFormLayout()
        form.addRow("Prompt", self.prompt)
        form.addRow("", self.examples)
        form.addRow("Frames", self.frames)
        form.addRow("Size", self.size)
        form.addRow("Steps", self.steps)
        form.addRow("Seed", seed_row)
        form.addRow("Guidance", self.guidance)
        form.addRow("Model", self.model)
        form.addRow("Style", self.style)
        form.addRow("Fast", self.fast)
        self.form = form
        form.addRow("Start image", self.start_image)
        form.addRow("End image", self.end_image)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_btn, 1)
        buttons.addWidget(self.cancel_btn)
        left = QVBoxLayout()
        left.addLayout(form)
        left.addLayout(buttons)
        left.addWidget(self.progress)
        left.addWidget(self.status)
        left.addStretch(1)
        lay = QHBoxLayout(self)
        lay.addLayout(left, 2)
        lay.addWidget(self.preview, 3)

    def _connect(self, vm: CreateViewModel) -> None:
        self.prompt.textChanged.connect(lambda: vm.set_value("prompt", self.prompt.toPlainText()))
        vm.prompt_changed.connect(self._prompt_from_vm)
        self.examples.activated.connect(self._example)
        bind_spin(self.frames, vm.frames_changed, lambda v: vm.set_value("frames", v), vm.frames)
        bind_spin(self.steps, vm.steps_changed, lambda v: vm.set_value("steps", v), vm.steps)
        bind_spin(self.seed, vm.seed_changed, lambda v: vm.set_value("seed", v), vm.seed)
        bind_spin(self.guidance, vm.guidance_changed, lambda v: vm.set_value("guidance", v), vm.guidance)
        self.size.setCurrentIndex(max(0, self.size.findData(vm.size)))
        self.size.currentIndexChanged.connect(lambda i: vm.set_value("size", self.size.itemData(i)))
        vm.size_changed.connect(lambda s: self.size.setCurrentIndex(max(0, self.size.findData(s))))  # recipe reuse
        self.model.currentIndexChanged.connect(self._model_from_combo)
        vm.models_changed.connect(self._models)
        vm.model_changed.connect(lambda name: self.model.setCurrentIndex(max(0, self.model.findData(name))))
        self.style.toggled.connect(vm.set_styled)
        vm.prompt_changed.connect(lambda _t: self._style_from_vm())
        vm.style_tag_changed.connect(lambda _t: self._style_from_vm())
        self._style_from_vm()
        self.fast.toggled.connect(lambda on: vm.set_value("fast", on))
        vm.fast_changed.connect(lambda _on: self._fast_from_vm())
        vm.fast_steps_changed.connect(lambda _n: self._fast_from_vm())
        self._fast_from_vm()
        self.dice.clicked.connect(vm.roll_seed)
        self.generate_btn.clicked.connect(vm.generate)
        self.cancel_btn.clicked.connect(vm.cancel)
        QShortcut(QKeySequence("Ctrl+Return"), self, vm.generate)
        vm.busy_changed.connect(self._busy)
        vm.progress_changed.connect(lambda v: self.progress.setValue(int(v * 1000)))
        vm.status_changed.connect(self.status.setText)
        vm.preview_changed.connect(self._preview)

    def _prompt_from_vm(self, text: str) -> None:
        if self.prompt.toPlainText() != text:
            self.prompt.setPlainText(text)

    def _style_from_vm(self) -> None:
        """The style box: shown for a model with a style tag, ticked while the prompt carries it."""
        tag = self.vm.style_tag
        self.form.setRowVisible(self.style, bool(tag))
        self.style.setText(f"Add “{tag}” to the prompt" if tag else "")
        self.style.blockSignals(True)
        self.style.setChecked(self.vm.styled())
        self.style.blockSignals(False)

    def _fast_from_vm(self) -> None:
        """The Fast box: shown for a model with few-step deltas, ticked as the form (and its saved setting) says."""
        n = self.vm.fast_steps
        self.form.setRowVisible(self.fast, n > 0)
        self.fast.setText(f"Draw in {n} steps (few-step deltas)" if n else "")
        self.fast.blockSignals(True)
        self.fast.setChecked(self.vm.fast)
        self.fast.blockSignals(False)
        # the few-step sampler draws unguided (its deltas learnt the guided drawing): the box would do nothing
        self.guidance.setEnabled(not (n and self.vm.fast))

    def _example(self, index: int) -> None:
        if index > 0:
            self.vm.set_value("prompt", EXAMPLES[index - 1])
        self.examples.setCurrentIndex(0)

    def _models(self, models: list) -> None:
        self.model.blockSignals(True)
        self.model.clear()
        for m in models:
            extra = " (shipped)" if m.get("builtin") else ""
            self.model.addItem(f"{m.get('name', '?')}{extra}", m.get("name"))
        self.model.setCurrentIndex(max(0, self.model.findData(self.vm.model)))
        self.model.blockSignals(False)

    def _model_from_combo(self, index: int) -> None:
        if index >= 0:
            self.vm.set_value("model", self.model.itemData(index))

    def _busy(self, busy: bool) -> None:
        self.generate_btn.setEnabled(not busy)
        self.cancel_btn.setEnabled(busy)
        self.progress.setVisible(busy or self.vm.progress > 0)

    def _preview(self, paths: list) -> None:
        self.preview.set_frames(paths)
        self.preview.cycle(100 if len(paths) > 1 else 0)
