"""A clinic of common mistakes in meta-learning, multi-task and transfer code.

Each module holds one mistaken snippet, written small and runnable as such code is found on the
web, next to its corrected version (or a pointer to the library function that does it right);
each docstring states the symptom a reader would see. ``tests/clinic/`` demonstrates every bug
with a check that fails on the mistaken version and passes on the corrected one.

* :mod:`~companion.clinic.maml_write_back`: MAML through ``load_state_dict``;
* :mod:`~companion.clinic.protonet_prototypes`: prototypes on the CPU, labels assumed
  ``0..N-1``, unsquared distances;
* :mod:`~companion.clinic.fake_multitask`: a single-output "multi-task" model on one data set;
* :mod:`~companion.clinic.sequential_finetuning`: "meta-learning" as sequential fine-tuning
  that overwrites its own task list;
* :mod:`~companion.clinic.stacked_linear`: a "meta-model" of two linear layers;
* :mod:`~companion.clinic.fake_objectives`: objectives that only look like meta-learning,
  multi-task or transfer learning.

Chapter: Applications, open problems and FAQ (the clinic).
"""
