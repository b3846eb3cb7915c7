import streamlit as st

st.title("agreement")
st.info("Coming with the rest of ownbench.")
