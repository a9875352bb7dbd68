"""Turns GeoDataFrames and report tables into folium maps. No queries inside."""
