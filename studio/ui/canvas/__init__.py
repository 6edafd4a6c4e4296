"""The node canvas: a QGraphicsScene that mirrors a Document, and the view that navigates it."""
