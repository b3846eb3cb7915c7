import streamlit as st

st.title("eval_sets")
st.info("Coming with the rest of ownbench.")
