import streamlit as st

st.title("runs")
st.info("Coming with the rest of ownbench.")
