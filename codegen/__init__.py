"""Code generators and model builders (installed as edgec.codegen)."""
