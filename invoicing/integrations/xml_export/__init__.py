"""The XML accounting export: dispatched orders as XML files delivered by SFTP or to a local directory."""
