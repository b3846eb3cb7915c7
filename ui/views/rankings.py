import streamlit as st

st.title("rankings")
st.info("Coming with the rest of ownbench.")
