"""Rich renderers: tables and panels for people. They never parse bytes."""
