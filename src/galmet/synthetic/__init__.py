"""galmet.synthetic.render."""
