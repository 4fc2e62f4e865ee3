"""The edgec intermediate representation."""

from edgec.ir.graph import Graph, IRError, Node, Value
from edgec.ir.printer import print_graph
from edgec.ir.types import DType, QuantParams, TensorType

__all__ = ["DType", "Graph", "IRError", "Node", "QuantParams", "TensorType", "Value", "print_graph"]
