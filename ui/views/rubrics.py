import streamlit as st

st.title("rubrics")
st.info("Coming with the rest of ownbench.")
