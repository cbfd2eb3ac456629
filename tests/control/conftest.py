"""Cancel, deadlines and priorities run on the fault tests' mesh of real processes."""

from tests.faults.conftest import fault_mesh

__all__ = ["fault_mesh"]
