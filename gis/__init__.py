"""gridpatrol's spatial core: pure functions over GeoDataFrames, shapely geometries and networkx graphs.

Persistence lives in :mod:`gis.db`; nothing here talks HTTP or reads settings.
"""
