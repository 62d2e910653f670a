"""HTTP only: parse → one service call → render a page or a fragment."""
