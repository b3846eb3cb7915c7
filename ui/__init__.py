"""The Streamlit app: thin pages over the packages below."""
