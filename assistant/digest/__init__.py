"""The weekly digest: choose the week's papers, write a card for each, render, post."""
